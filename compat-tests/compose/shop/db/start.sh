# The database stand-in: publishes its version over HTTP and marks itself
# ready in the shared volume (its healthcheck looks for the mark).
mkdir -p /srv/www && cp /srv/version /srv/www/version
touch /data/ready
echo "db $(cat /srv/version) ready"
exec httpd -f -p 5432 -h /srv/www
